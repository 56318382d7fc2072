from glob import glob

from setuptools import find_packages
from setuptools import setup

package_name = 'wallwm_sim'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'tools']),
    package_data={package_name: ['assets/so101_visual/*']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        (
            'share/' + package_name + '/assets/so101_visual',
            glob('wallwm_sim/assets/so101_visual/*'),
        ),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='wallwm maintainers',
    maintainer_email='maintainers@wallwm.dev',
    description='MuJoCo SO-101 tabletop, scripted experts and ROS 2 bridge for wallwm',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'sim_bridge = wallwm_sim.nodes.sim_bridge:main',
        ],
    },
)
